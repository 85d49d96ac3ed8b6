"""The Lambda relay that streams a SageMaker endpoint's tokens (TGI, LMI or vLLM) through a
function URL."""
