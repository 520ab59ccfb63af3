"""`iraas openstack deploy|teardown`: argument parsing and output; the work is in deploy.py."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from iraas.arguments import port


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
    d.add_argument("--http-cidr", default="0.0.0.0/0", help="addresses allowed in on HTTP (default: all)")
    d.add_argument("--port", type=port, default=80, help="HTTP port of the web tier, 1-65535")
    d.add_argument("--floating-network", help="external network to take a floating IP from (default: no floating IP)")
    d.add_argument(
        "--aws-credentials", choices=["env", "none"], default="env",
        help="env: copy this shell's AWS_* keys into the server's /etc/iraas/aws.env; "
        "none: provide them on the server yourself",
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
        public_key_file=args.public_key, http_cidr=args.http_cidr, port=args.port,
        aws_credentials=args.aws_credentials, floating_network=args.floating_network,
    )
    try:
        plan = build_plan(options)
    except (PlanError, ValueError) as exc:
        print(f"iraas openstack deploy: {exc}", file=sys.stderr)
        return 2
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
