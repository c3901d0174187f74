"""S3 notifications into SQS on the local endpoint (moto's server implements both), for the tests and
the discovery bench: a queue the bucket's ObjectCreated events under a prefix go to, as
docs/discovery.md sets it up in production."""

from __future__ import annotations

from typing import Any

from imr_devtools import devservices


def sqs_client(env: dict[str, str]):
    """A boto3 SQS client for the local endpoint (the same server and credentials as S3).

    :param env: the engines' variables, as devservices.service_env() or start() return them
    :return: a boto3 SQS client
    """
    return devservices.local_client("sqs", env)


def create_queue(sqs, name: str, visibility_s: int = 30) -> tuple[str, str]:
    """A standard queue; returns (url, arn).

    :param sqs: a boto3 SQS client
    :param name: the queue's name
    :param visibility_s: the queue's default visibility timeout
    :return: the queue's URL and ARN
    """
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": str(visibility_s)})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def notification_configuration(queue_arn: str, prefix: str) -> dict[str, Any]:
    """The bucket notification configuration docs/discovery.md gives: ObjectCreated:* of keys under
    `prefix` ending in .pdf, to the queue."""
    return {
        "QueueConfigurations": [
            {
                "Id": "imr-letters-created",
                "QueueArn": queue_arn,
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {
                    "Key": {
                        "FilterRules": [
                            {"Name": "prefix", "Value": prefix},
                            {"Name": "suffix", "Value": ".pdf"},
                        ]
                    }
                },
            }
        ]
    }


def notify(s3, bucket: str, queue_arn: str | None, prefix: str = "letters/") -> None:
    """Point the bucket's notifications at the queue; None turns them off (objects uploaded then
    announce nothing: a lost event, for the reconciliation to find).

    :param s3: a boto3 S3 client
    :param bucket: the bucket
    :param queue_arn: the queue's ARN, or None for no notifications
    :param prefix: the key prefix notified
    """
    config = notification_configuration(queue_arn, prefix) if queue_arn else {}
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)


def queue_depth(sqs, url: str) -> int:
    """Messages in the queue, visible or in flight.

    :param sqs: a boto3 SQS client
    :param url: the queue's URL
    :return: ApproximateNumberOfMessages + ApproximateNumberOfMessagesNotVisible (exact on moto)
    """
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])
