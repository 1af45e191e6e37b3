"""Ray Serve RAG application (query encoder + FAISS + generator); built in its own issue."""
