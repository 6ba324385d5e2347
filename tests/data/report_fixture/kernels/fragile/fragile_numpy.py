"""Raises with HTML markup in its message: the report must show it as text."""


def forward(x):
    raise ValueError("bad shape <script>alert(1)</script> & <b>bold</b>")
