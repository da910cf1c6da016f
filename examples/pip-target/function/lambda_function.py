"""AWS's documented layout: the handler and `pip install --target .` in one folder."""

import requests


def lambda_handler(event, context):
    return {"requests": requests.__version__, "status": "ok"}
