"""Lambda events as AWS sends them, for the handlers' tests."""

from __future__ import annotations

from urllib.parse import quote_plus


def s3_event(bucket: str, key: str, size: int = 1) -> dict:
    """An S3 ObjectCreated:Put event as AWS sends it (the key is quote_plus-encoded)."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2024-05-06T07:08:09.000Z",
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
                "requestParameters": {"sourceIPAddress": "203.0.113.9"},
                "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "VideoUploaded",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {"key": quote_plus(key), "size": size, "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                               "sequencer": "0055AED6DCD90281E5"},
                },
            }
        ]
    }
