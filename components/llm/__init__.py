"""The black-box teacher: prompt building (``prompts``), output parsing (``permutation``), the
ranking schedule (``windows``), HTTP/vLLM backends (``backends``), the local llama.cpp server
(``local_server``) and the teacher simulator (``teacher_sim``)."""
