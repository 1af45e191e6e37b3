from components.stages import index as stage
from jobs.common import entry_point

__doc__ = stage.__doc__
main = entry_point(stage.__doc__, stage.build_index)

if __name__ == "__main__":
    raise SystemExit(main())
