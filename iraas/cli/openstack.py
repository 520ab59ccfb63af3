"""`iraas openstack deploy|teardown`: argument parsing and output; the work is in deploy.py."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from iraas.cli.arguments import port

# The same tuples as iraas.hybrid.plan's, which imports pyyaml: every `iraas` command builds this
# parser, and a worker has no pyyaml.
AWS_CREDENTIAL_MODES = ("ssh", "none", "env")
API_KEY_SOURCES = ("ssh", "generate")


def add_openstack_commands(sub: argparse._SubParsersAction) -> None:
    """Register `iraas openstack ...` on the top-level subcommands."""
    p = sub.add_parser("openstack", help="deploy the web tier to an OpenStack cloud (Nova)")
    os_sub = p.add_subparsers(dest="openstack_command", required=True)

    d = os_sub.add_parser("deploy", help="boot a Nova server running the web tier against the AWS stack")
    d.add_argument("--cloud", required=True, help="cloud name in clouds.yaml")
    d.add_argument("--ssh-cidr", required=True, help="the only addresses allowed in on SSH (e.g. 203.0.113.0/24)")
    d.add_argument("--source-url", required=True, help="git URL of this repository, cloned by the server")
    d.add_argument("--source-ref", default="main", help="branch or tag to deploy")
    d.add_argument("--name", default="iraas-web", help="server name; also names and marks what deploy creates")
    d.add_argument("--image", default="debian-12", help="image name, with Python >= 3.11 (Debian 12, Ubuntu 24.04)")
    d.add_argument("--flavor", default="m1.small", help="the server's flavor (its size)")
    d.add_argument("--network", default="private", help="the network the server is attached to")
    d.add_argument("--keypair", help="an existing keypair (default: find or create <name>-key)")
    d.add_argument("--public-key", type=Path, help="public key for a created keypair (default: ~/.ssh/id_ed25519.pub)")
    d.add_argument(
        "--https-cidr", default="0.0.0.0/0",
        help="addresses allowed in on HTTPS (default: all); there is no plain HTTP port",
    )
    d.add_argument("--port", type=port, default=443, help="HTTPS port of the web tier, 1-65535 (default: 443)")
    d.add_argument("--floating-network", help="external network to take a floating IP from (default: no floating IP)")
    d.add_argument(
        "--aws-credentials", choices=AWS_CREDENTIAL_MODES, default="ssh",
        help="ssh: send this shell's AWS_* keys over SSH after boot into /etc/iraas/aws.env; "
        "none: provide that file on the server yourself; env: put them in the user data, which the "
        "metadata service serves to every process on the server (warned) (default: ssh)",
    )
    d.add_argument(
        "--api-key-source", choices=API_KEY_SOURCES, default="ssh",
        help="ssh: send this shell's IRAAS_API_KEY (comma-separated keys) over SSH after boot; "
        "generate: the server makes one on first boot, read with ssh (default: ssh)",
    )
    d.add_argument(
        "--tls-cert", type=Path,
        help="PEM certificate (chain) for HTTPS, sent over SSH with --tls-key "
        "(default: a self-signed certificate made on the server at first boot, pinned by deploy)",
    )
    d.add_argument("--tls-key", type=Path, help="the unencrypted PEM private key of --tls-cert (default: none)")
    d.add_argument(
        "--ssh-user", default="debian",
        help="the image's login user that holds the keypair and sudo, for sending secrets (default: debian; ubuntu on Ubuntu)",
    )
    d.add_argument("--dry-run", action="store_true", help="print the plan and user data; no network call")
    d.set_defaults(func=cmd_deploy)

    t = os_sub.add_parser("teardown", help="remove what deploy created")
    t.add_argument("--cloud", required=True, help="cloud name in clouds.yaml")
    t.add_argument("--name", default="iraas-web", help="the name deploy was given")
    t.set_defaults(func=cmd_teardown)


def cmd_deploy(args: argparse.Namespace) -> int:
    # Imported here: every `iraas` command builds this parser, and a worker has no pyyaml/openstacksdk.
    from iraas.hybrid.plan import DeployOptions, PlanError, build_plan

    options = DeployOptions(
        cloud=args.cloud, ssh_cidr=args.ssh_cidr, source_url=args.source_url, source_ref=args.source_ref,
        name=args.name, image=args.image, flavor=args.flavor, network=args.network, keypair=args.keypair,
        public_key_file=args.public_key, https_cidr=args.https_cidr, port=args.port,
        aws_credentials=args.aws_credentials, api_key_source=args.api_key_source,
        tls_cert=args.tls_cert, tls_key=args.tls_key, ssh_user=args.ssh_user,
        floating_network=args.floating_network,
    )
    try:
        plan = build_plan(options)
    except (PlanError, ValueError) as exc:
        print(f"iraas openstack deploy: {exc}", file=sys.stderr)
        return 2
    for warning in plan.warnings:
        print(f"iraas openstack deploy: {warning}", file=sys.stderr)
    if args.dry_run:
        print(plan.describe())
        return 0
    from openstack.exceptions import SDKException

    from iraas.hybrid.deploy import DeployError, connect, deploy

    try:
        deploy(connect(args.cloud), plan, say=lambda m: print(m, flush=True))
    except (DeployError, SDKException) as exc:  # the cloud's own message names what it refused
        print(f"iraas openstack deploy: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_teardown(args: argparse.Namespace) -> int:
    from openstack.exceptions import SDKException

    from iraas.hybrid.deploy import connect, teardown

    try:
        teardown(connect(args.cloud), args.name, say=lambda m: print(m, flush=True))
    except SDKException as exc:
        print(f"iraas openstack teardown: {exc}", file=sys.stderr)
        return 1
    return 0
