"""Small S3 helpers bench/cloud calls with the bench/.venv-s3 Python (boto3).

  s3_util.py mkbucket BUCKET                    create BUCKET (fine if it exists)
  s3_util.py put BUCKET KEY FILE                upload FILE (multipart, SSE-S3); print seconds
  s3_util.py json BUCKET KEY FIELD [FIELD...]   print FIELDs of a JSON object, space-separated
  s3_util.py size BUCKET KEY                    print the object's size in bytes
  s3_util.py rmbucket BUCKET                    delete every object version, then the bucket

The endpoint, region and credentials come from the environment (AWS_ENDPOINT_URL,
AWS_REGION, AWS_ACCESS_KEY_ID...), as for hcctl: eval "$(scripts/stack up)" points them at
the local emulator.
"""

import json
import os
import sys
import time


def client():
    import boto3

    return boto3.client("s3", region_name=os.environ.get("AWS_REGION", "eu-west-3"))


def mkbucket(s3, bucket):
    region = s3.meta.region_name
    args = {"Bucket": bucket}
    if region != "us-east-1":
        args["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3.create_bucket(**args)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    # Patient data: private and encrypted, as the drops bucket hcctl deploys.
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )


def rmbucket(s3, bucket):
    try:
        pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket)
        for page in pages:
            doomed = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            if doomed:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed, "Quiet": True})
        s3.delete_bucket(Bucket=bucket)
    except s3.exceptions.NoSuchBucket:
        pass


def main(argv):
    if not argv:
        sys.exit(__doc__)
    cmd, rest = argv[0], argv[1:]
    s3 = client()
    if cmd == "mkbucket" and len(rest) == 1:
        mkbucket(s3, rest[0])
    elif cmd == "put" and len(rest) == 3:
        from boto3.s3.transfer import TransferConfig

        started = time.monotonic()
        s3.upload_file(
            rest[2],
            rest[0],
            rest[1],
            ExtraArgs={"ServerSideEncryption": "AES256"},
            Config=TransferConfig(multipart_chunksize=16 * 1024 * 1024),
        )
        print(f"{time.monotonic() - started:.2f}")
    elif cmd == "json" and len(rest) >= 3:
        body = s3.get_object(Bucket=rest[0], Key=rest[1])["Body"].read()
        report = json.loads(body)
        print(" ".join(str(report.get(field, "?")) for field in rest[2:]))
    elif cmd == "size" and len(rest) == 2:
        print(s3.head_object(Bucket=rest[0], Key=rest[1])["ContentLength"])
    elif cmd == "rmbucket" and len(rest) == 1:
        rmbucket(s3, rest[0])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
