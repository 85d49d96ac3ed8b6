"""The FastAPI shape of the Web Adapter's response-streaming example, as a user writes it: the
cold-start baseline (cold_start.py starts it with uvicorn, on a bare interpreter that has only
FastAPI, uvicorn and boto3; this directory is the app directory, not a package of the project).
fastapi_stream_app.py adds the route that streams.

It creates its SageMaker client at import, as the example does, and answers the adapter's
readiness check.
"""

import boto3
from fastapi import FastAPI

client = boto3.client("sagemaker-runtime")
app = FastAPI()


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}
