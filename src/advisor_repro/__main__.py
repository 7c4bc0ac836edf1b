from advisor_repro.cli import main

raise SystemExit(main())
