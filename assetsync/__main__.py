from assetsync.cli import main

raise SystemExit(main())
