"""Hybrid cloud: deploying the web tier to an OpenStack cloud (Nova), where it serves with gunicorn
(``iraas/web/``) against the same AWS queues and buckets: the plan, the cloud-init user data, and
the openstacksdk calls."""
