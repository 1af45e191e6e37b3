from components.stages import pipeline as stage
from jobs.common import entry_point

__doc__ = stage.__doc__
main = entry_point(stage.__doc__, stage.run_pipeline, llm_options=True)

if __name__ == "__main__":
    raise SystemExit(main())
