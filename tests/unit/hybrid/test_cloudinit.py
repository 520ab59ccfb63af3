"""iraas/hybrid/cloudinit.py: a value that could escape its line of the user data is refused.
(The rendered user data against cloud-init, the unit against systemd and the first-boot script
run: tests/integration/hybrid/test_cloudinit.py.)"""

from __future__ import annotations

import pytest

from iraas.hybrid.cloudinit import UserData, UserDataError, render_user_data


def test_a_value_that_could_escape_its_line_is_refused():
    with pytest.raises(UserDataError, match="IRAAS_REGION"):
        render_user_data(UserData("https://git.example.com/x.git", "main", {"IRAAS_REGION": "eu\nEVIL=1"}))
    with pytest.raises(UserDataError, match="source ref"):
        render_user_data(UserData("https://git.example.com/x.git", "--upload-pack=evil", {}))
