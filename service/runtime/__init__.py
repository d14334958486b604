"""The application: the cycle (collect → book), the daemon and its scheduler, logging, the
failure policy, and the read models `status` and `simulate` share with the daemon."""
