"""Filters of Paredão's playbook."""

import base64
import hashlib


def rabbitmq_password_hash(password, user):
    """The stored form of a RabbitMQ password (rabbit_password_hashing_sha256): base64 of a
    4-byte salt followed by SHA-256 of salt + password, as scripts/rabbitmq.sh writes it.

    The salt is derived from the user and the password instead of drawn at random, so
    that the rendered definitions stay the same from one run to the next (a template
    that changes every run could never report changed=0)."""
    password = password.strip("\n")
    salt = hashlib.sha256(("paredao-rabbitmq-salt:%s:%s" % (user, password)).encode()).digest()[:4]
    digest = hashlib.sha256(salt + password.encode()).digest()
    return base64.b64encode(salt + digest).decode()


def nginx_ssha(password):
    """An htpasswd entry's hash that nginx reads ({SSHA}: base64 of SHA-1 of password +
    salt, then the salt), as nginx/make-htpasswd.sh writes it without openssl; the salt
    comes from the password, for the same reason as above."""
    password = password.strip("\n")
    salt = hashlib.sha256(("paredao-htpasswd-salt:%s" % password).encode()).digest()[:8]
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


class FilterModule:
    """rabbitmq_password_hash(user), nginx_ssha"""

    def filters(self):
        return {"rabbitmq_password_hash": rabbitmq_password_hash, "nginx_ssha": nginx_ssha}
