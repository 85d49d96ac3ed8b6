#!/bin/sh
# The Lambda handler: the Web Adapter (AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap) runs this script,
# then forwards each invocation as HTTP to 127.0.0.1:$PORT. It works the same from a checkout:
#   ENDPOINT_NAME=x AWS_REGION=us-east-1 PORT=18080 sh lambda/streamer/run.sh
set -eu
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
# As in the adapter's zip examples: the bundled packages, /opt/python (layers) and the runtime's
# own boto3 on PYTHONPATH. The asset root comes first so `streamer` resolves to this package
# wherever the script is started from. (No bin/ on PATH: the bundle ships no scripts, and
# `python -m streamer` needs none.)
PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}:/opt/python${LAMBDA_RUNTIME_DIR:+:$LAMBDA_RUNTIME_DIR}"
export PYTHONPATH
exec python -m streamer
