from components.stages import candidates as stage
from jobs.common import entry_point

__doc__ = stage.__doc__
main = entry_point(stage.__doc__, stage.build_candidates)

if __name__ == "__main__":
    raise SystemExit(main())
