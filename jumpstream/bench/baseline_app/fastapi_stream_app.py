"""The paced-stream baseline: fastapi_app's app with the route that streams, written as the Web
Adapter's FastAPI streaming example and AWS's SageMaker streaming examples write it.

A sync route calls InvokeEndpointWithResponseStream with boto3 and returns a StreamingResponse
over a sync generator (a blocking event stream must not be read in an `async` generator: the
Adapter's issues #278 and #314). Starlette reads the generator in worker threads, one item at a
time; the generator splits the PayloadParts into lines with the SageMaker SDK's LineIterator and
yields each token's text. (Its own module, so that the cold-start baseline does not import the
SDK: fastapi_baseline.py starts this one in the project's environment, for paced.py and
capacity.py.)
"""

import json
import os
from typing import Annotated

from fastapi import Body
from fastapi.responses import StreamingResponse
from fastapi_app import app, client
from sagemaker.core.iterators import LineIterator

ENDPOINT_NAME = os.environ["ENDPOINT_NAME"]


def token_texts(event_stream):
    for line in LineIterator(event_stream):
        if line.startswith(b"data:"):
            token = json.loads(line[5:])["token"]
            if not token["special"]:
                yield token["text"]


@app.post("/")
def generate(payload: Annotated[dict, Body()]) -> StreamingResponse:
    response = client.invoke_endpoint_with_response_stream(
        EndpointName=ENDPOINT_NAME,
        Body=json.dumps(payload),
        ContentType="application/json",
    )
    return StreamingResponse(token_texts(response["Body"]), media_type="text/plain")
