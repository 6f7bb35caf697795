"""Backends, one file each, chosen by artifact kind (`gaugan_sdk.kinds`); each imports its library only when it
is opened."""

from .base import Backend, DeviceArray

__all__ = ["Backend", "DeviceArray"]
