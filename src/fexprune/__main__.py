from fexprune.cli import main

raise SystemExit(main())
