"""gridsvc: grid-based Party organisation for Chinese city communities.

Layers (imports only go downwards): ``web`` and ``cli`` call ``services``; services call
``storage``, ``spatial``, ``io`` and ``validation``; none of those import Flask.
"""

__version__ = "0.1.0"
