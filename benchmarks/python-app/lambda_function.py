"""The Python benchmark's handler: what its installed tree is for."""

import boto3
import pandas
import pydantic
import requests


def handler(event, context):
    return {
        "pandas": pandas.__version__,
        "pydantic": pydantic.VERSION,
        "requests": requests.__version__,
        "boto3": boto3.__version__,
    }
