from cyclesynth.cli import main

raise SystemExit(main())
