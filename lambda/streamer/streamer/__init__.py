"""The Lambda relay that streams a SageMaker TGI endpoint's tokens through a function URL."""
