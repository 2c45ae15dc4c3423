"""The evostim HTTP service: sessions, generations, responses, images."""
