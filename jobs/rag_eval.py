from components.stages import rag_eval as stage
from jobs.common import entry_point

__doc__ = stage.__doc__
main = entry_point(stage.__doc__, stage.rag_eval)

if __name__ == "__main__":
    raise SystemExit(main())
