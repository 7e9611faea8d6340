"""tinycats train-classifier / classify: the breed classifier that judges generated samples."""

from __future__ import annotations

import argparse

from tinycats.cli.common import add_device, output_path


def register(sub: argparse._SubParsersAction) -> None:
    from tinycats.evaluate.settings import BACKBONES, DEFAULT_IMAGE_SIZE, ClassifierSettings

    defaults = ClassifierSettings()
    t = sub.add_parser(
        "train-classifier",
        help="train the breed classifier used by `tinycats evaluate`",
        description="Train on DATA_DIR/train/<Class>/*, measure top-1 accuracy on DATA_DIR/test/<Class>/* and save both.",
    )
    t.add_argument("data_dir", metavar="DATA_DIR", help="image folder with train/ (and test/), e.g. data/cats")
    t.add_argument("--backbone", choices=BACKBONES, default=defaults.backbone, help="network (default: small-cnn)")
    t.add_argument("--pretrained-weights", help="a torchvision resnet18 ImageNet state dict file to start from (resnet18 only)")
    t.add_argument(
        "--epochs", type=int, default=defaults.epochs, help=f"passes over the training set (default: {defaults.epochs})"
    )
    sizes = ", ".join(f"{k} {v}" for k, v in DEFAULT_IMAGE_SIZE.items())
    t.add_argument("--image-size", type=int, help=f"input resolution; use the generator's (default per backbone: {sizes})")
    t.add_argument(
        "--batch-size", type=int, default=defaults.batch_size, help=f"images per step (default: {defaults.batch_size})"
    )
    t.add_argument(
        "--lr", type=float, default=defaults.lr, help=f"peak learning rate, one-cycle schedule (default: {defaults.lr})"
    )
    t.add_argument("--seed", type=int, default=defaults.seed, help="weights, data order and augmentation (default: 0)")
    t.add_argument("--output", default="classifier.pt", help="where to save it (default: classifier.pt)")
    add_device(t)
    t.set_defaults(run=run_train)

    c = sub.add_parser(
        "classify",
        help="name the breed of images with a trained classifier",
        description="Print the three most likely breeds of each image, with their probabilities.",
    )
    c.add_argument("--checkpoint", required=True, help="a classifier file from `tinycats train-classifier`")
    c.add_argument("images", metavar="IMAGE", nargs="+", help="image files")
    add_device(c)
    c.set_defaults(run=run_classify)


def run_train(args: argparse.Namespace) -> int:
    from tinycats.evaluate.classifier import ClassifierSettings, train_from_folder

    output = output_path("--output", args.output)
    settings = ClassifierSettings(
        backbone=args.backbone,
        image_size=args.image_size,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        pretrained_weights=args.pretrained_weights,
        device=args.device,
    )

    def report(epoch: int, epochs: int, loss: float, train_accuracy: float, seconds: float) -> None:
        print(f"epoch {epoch}/{epochs}: loss {loss:.4f}, train accuracy {train_accuracy:.3f} ({seconds:.1f} s)", flush=True)

    clf = train_from_folder(args.data_dir, settings, progress=report)
    path = clf.save(output)
    if clf.test_accuracy is None:
        print(f"saved {path} ({args.data_dir} has no test/ split: test accuracy not measured)")
    else:
        print(f"test accuracy {clf.test_accuracy:.4f} on {clf.info['test_images']} images; saved {path}")
    return 0


def run_classify(args: argparse.Namespace) -> int:
    from tinycats.evaluate.classifier import classify_files, load

    clf = load(args.checkpoint, args.device)
    for path, top in classify_files(clf, args.images):
        print(f"{path}: " + ", ".join(f"{name} {p:.3f}" for name, p in top))
    return 0
