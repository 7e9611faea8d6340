"""The Hugging Face Hub: one repo layout (`layout`), loading a published model (`load`), staging and
checking a repo folder (`stage`, `check`), the model card (`card`) and the one-commit upload
(`publish`). The browser page reads the same layout through onnx/generator.json."""
