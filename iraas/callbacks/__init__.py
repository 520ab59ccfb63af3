"""Completion callbacks: when an image's answer is stored, POST it, signed, to the URL its request named.

The worker puts one job per answer on the callback queue (:mod:`.jobs`); the callback function
(``functions/callbacks/handler.py``: Lambda on AWS, a local runner under ``iraas up``) delivers it
(:mod:`.sender`) to an address the policy allows (:mod:`.policy`), signed with the stack's secret
(:mod:`.signing`, :mod:`.settings`), and tries again later, a bounded number of times, if the
receiver does not take it.
"""
