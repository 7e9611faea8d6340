from tinycats.cli import main

raise SystemExit(main())
