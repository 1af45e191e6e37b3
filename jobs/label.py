from components.stages import labels as stage
from jobs.common import entry_point

__doc__ = stage.__doc__
main = entry_point(stage.__doc__, stage.label, llm_options=True)

if __name__ == "__main__":
    raise SystemExit(main())
