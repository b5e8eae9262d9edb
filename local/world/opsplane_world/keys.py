"""The account's KMS keys: keys the platform team keeps outside opsplane (a spec's ``backup.copy_kms_key_id``
names one by alias in the copy region), made in moto's KMS when absent, as a real account already holds them.
moto's RDS resolves them when it copies a snapshot with a ``KmsKeyId``; the model resolves an instance's
storage key to its ARN, as RDS reports it.
"""

from moto.kms.models import kms_backends

from .context import ACCOUNT


def account_key(region, alias):
    """The account's KMS key ``alias/<alias>`` in ``region``, made when absent: a key the platform team
    keeps (for a spec's ``backup.copy_kms_key_id``), as the account would already hold it. Its ARN."""
    kms = kms_backends[ACCOUNT][region]
    name = f"alias/{alias}"
    key_id = kms.get_key_id_from_alias(name)
    if key_id is None:
        key = kms.create_key(None, "ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT", f"{alias} (the account's)", None)
        kms.create_alias(key.id, name)
        key_id = key.id
    return {"arn": kms.describe_key(key_id).arn}


def key_arn(region, reference):
    """The ARN of the key ``reference`` names (an ARN, a key id or ``alias/<name>``) in ``region``, or the
    reference itself when KMS has no such key (RDS then refuses the request on its own)."""
    kms = kms_backends[ACCOUNT][region]
    try:
        return kms.describe_key(reference).arn
    except (KeyError, AttributeError, TypeError):
        # moto looks an unknown id up in a dict, and an unknown alias as None.
        return reference
