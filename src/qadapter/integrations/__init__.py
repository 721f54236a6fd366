"""Use a trained adapter where your app retrieves: Chroma, Sentence Transformers, LlamaIndex and LangChain.

Every integration applies the adapter to query embeddings only; documents keep their base-model vectors, so the
existing index stays valid. Each module imports its framework lazily and names the extra to install when it is
missing.
"""
