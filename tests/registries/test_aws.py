"""registries.aws against moto in server mode (a real HTTP endpoint)."""

import datetime as dt
import socket

import pytest

from registries.aws import AwsError, EcrToken, ecr_authorization_token

ACCOUNT = "123456789012"
REGION = "eu-west-1"
SECRET = "wJalrXUtnFEMI-not-a-real-secret"


@pytest.mark.services
def test_ecr_token_for_access_keys_is_decoded_into_user_and_password(moto_server):
    token = ecr_authorization_token(
        region=REGION,
        registry_id=ACCOUNT,
        access_key_id="AKIAWHARFUSERAUTH",
        secret_access_key=SECRET,
        endpoint_url=moto_server,
    )

    assert token.username == "AWS"
    assert token.password == f"{ACCOUNT}-auth-token"
    assert token.host == f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
    assert isinstance(token.expires_at, dt.datetime)


@pytest.mark.services
def test_ecr_token_without_keys_uses_ambient_environment_credentials(moto_server):
    token = ecr_authorization_token(region=REGION, registry_id=ACCOUNT, endpoint_url=moto_server)

    assert token.password == f"{ACCOUNT}-auth-token"


@pytest.mark.services
def test_rejected_access_key_raises_aws_error_naming_the_aws_code(moto_checks_credentials):
    with pytest.raises(AwsError) as caught:
        ecr_authorization_token(
            region=REGION,
            registry_id=ACCOUNT,
            access_key_id="AKIAWHARFUNKNOWNKEY",
            secret_access_key=SECRET,
            endpoint_url=moto_checks_credentials,
        )

    assert str(caught.value).startswith("AWS rejected the access key: ")
    assert SECRET not in str(caught.value)


def test_unreachable_endpoint_raises_aws_error_without_the_secret():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{sock.getsockname()[1]}"  # nothing listens

    with pytest.raises(AwsError) as caught:
        ecr_authorization_token(
            region=REGION,
            registry_id=ACCOUNT,
            access_key_id="AKIAWHARFUSERAUTH",
            secret_access_key=SECRET,
            endpoint_url=endpoint,
            timeout=2,
        )

    assert endpoint in str(caught.value)
    assert SECRET not in str(caught.value)


def test_missing_ambient_credentials_raise_aws_error(monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    with pytest.raises(AwsError, match="No AWS credentials"):
        ecr_authorization_token(
            region=REGION, registry_id=ACCOUNT, endpoint_url="http://127.0.0.1:9"
        )


def test_access_key_without_secret_raises_aws_error():
    with pytest.raises(AwsError, match="both"):
        ecr_authorization_token(region=REGION, registry_id=ACCOUNT, access_key_id="AKIAONLY")


def test_ecr_token_repr_does_not_contain_the_password():
    token = EcrToken("AWS", "ecr-password-value", "https://x", dt.datetime.now(dt.UTC))

    assert "ecr-password-value" not in repr(token)
