"""Tests of the engines addon and of the extra Docker engines the tests start."""
