"""Real SSH test hosts: a debootstrapped Debian image, a local apt repository and a reboot harness."""
