"""Calls a local rcfops endpoint with the real AWS SDK (boto3's sagemaker-runtime client).

Usage: boto3_invoke.py ENDPOINT_URL ENDPOINT_NAME [PROFILE REGION] < calls.json

With PROFILE and REGION, the keys come from that profile of the shared credentials file
(AWS_SHARED_CREDENTIALS_FILE), as a team's client code reads them; otherwise fixed example keys
are used (for endpoints without authentication). RCFOPS_CA_BUNDLE, when set, is the CA file
the client verifies an https endpoint with (boto3's `verify=`).

stdin is a JSON list of calls: {"content_type": ..., "accept": ... (optional), "body": ...,
"custom_attributes": ... (optional), "endpoint": ... (optional, overrides
ENDPOINT_NAME)}. Prints a JSON list with one result per call:
{"ok": true, "content_type": ..., "body": <response body text>, "http_status": ...,
"version": <x-rcfops-model-version>} or
{"ok": false, "error_code": ..., "message": ..., "http_status": ...} for a ClientError.
Exit code 3 when boto3 cannot be imported (the caller reports how to install it).
"""

import json
import os
import sys

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError
except ImportError as e:  # pragma: no cover - reported by the Rust test
    print(f"boto3 is not installed for {sys.executable}: {e}", file=sys.stderr)
    sys.exit(3)


def main():
    url, name = sys.argv[1], sys.argv[2]
    calls = json.load(sys.stdin)
    config = Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=30)
    verify = os.environ.get("RCFOPS_CA_BUNDLE") or None
    if len(sys.argv) > 4:
        session = boto3.Session(profile_name=sys.argv[3], region_name=sys.argv[4])
        client = session.client(
            "sagemaker-runtime", endpoint_url=url, config=config, verify=verify
        )
    else:
        client = boto3.client(
            "sagemaker-runtime",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="AKIDEXAMPLE",
            aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            config=config,
        )
    out = []
    for call in calls:
        kwargs = {
            "EndpointName": call.get("endpoint", name),
            "ContentType": call["content_type"],
            "Body": call["body"].encode("utf-8"),
        }
        if call.get("accept"):
            kwargs["Accept"] = call["accept"]
        if call.get("custom_attributes"):
            kwargs["CustomAttributes"] = call["custom_attributes"]
        try:
            r = client.invoke_endpoint(**kwargs)
            out.append(
                {
                    "ok": True,
                    "content_type": r.get("ContentType"),
                    "body": r["Body"].read().decode("utf-8"),
                    "http_status": r["ResponseMetadata"]["HTTPStatusCode"],
                    "version": r["ResponseMetadata"]["HTTPHeaders"].get(
                        "x-rcfops-model-version"
                    ),
                }
            )
        except ClientError as e:
            out.append(
                {
                    "ok": False,
                    "error_code": e.response["Error"].get("Code"),
                    "message": e.response["Error"].get("Message"),
                    "http_status": e.response["ResponseMetadata"].get("HTTPStatusCode"),
                }
            )
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
