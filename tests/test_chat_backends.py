"""Which chat backend a config section names, and what each answers before any call is made."""

from components.config import EndpointConfig, GeneratorConfig, LabelConfig, RayConfig
from components.llm.chat import EndpointPool, LocalServer, VLLMEngines, chat_backend
from components.llm.local_server import LocalLLMServer


def test_each_config_names_its_backend_and_model_without_calling_it():
    vllm = chat_backend(LabelConfig(backend="vllm"))
    assert isinstance(vllm, VLLMEngines) and vllm.model_id() == LabelConfig().vllm.model
    endpoints = [EndpointConfig(base_url="http://127.0.0.1:9/v1", model="b"), EndpointConfig(base_url="http://127.0.0.1:9/v1", model="a")]
    pool = chat_backend(LabelConfig(endpoints=endpoints))
    assert type(pool) is EndpointPool and pool.model_id() == "a|b"
    assert pool.ready(endpoints) == endpoints  # explicit models: nothing to ask the server
    local = chat_backend(GeneratorConfig())  # no endpoint: the embedded llama.cpp server, for the generator too
    assert isinstance(local, LocalServer) and local.model_id() == LocalLLMServer.alias(GeneratorConfig().local)


def test_a_sender_that_sends_nothing_starts_neither_the_backend_nor_ray():
    import ray

    was_running = ray.is_initialized()
    with chat_backend(LabelConfig()).sender(RayConfig(num_cpus=1)) as send:
        assert callable(send)
    assert ray.is_initialized() == was_running
