from cyclesynth.pipeline.cli import main

raise SystemExit(main())
