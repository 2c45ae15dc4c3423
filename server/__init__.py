"""The evostim HTTP service, by job: ``api`` (routes, problems), ``sessions`` (the service and its parts),
``storage`` (store, migrations), ``media`` (images, exports), ``ops`` (auth, observability), ``dashboard``."""
