from components.stages import questions as stage
from jobs.common import entry_point

__doc__ = stage.__doc__
main = entry_point(stage.__doc__, stage.generate_questions, llm_options=True)

if __name__ == "__main__":
    raise SystemExit(main())
