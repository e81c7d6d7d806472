"""The ``ipmi`` fence driver (entry point ``pvc.drivers.fence: ipmi``).

Powers a node off, on and reads its power state through the node's BMC
with ``ipmitool`` (Debian package ``ipmitool``), normally over IPMI 2.0
``lanplus``.

- :mod:`.driver`: :class:`~.driver.IpmiFenceDriver`, the driver, and its
  ``config_schema``.
- :mod:`.ipmitool`: one ipmitool call (argument list, per-call deadline,
  kill on timeout, error diagnosis, password masking).

Configuration (one fence-chain entry, ``fencing.chain.<node>[i]``)::

    - driver: ipmi
      host: 10.0.0.101            # required: the BMC's address
      port: 623                   # UDP port
      username: admin             # required
      password_file: /etc/pvc/ipmi-node1.pass   # or password: ...; exactly one
      cipher_suite: 3             # lanplus -C (3: HMAC-SHA1, AES-CBC-128)
      interface: lanplus          # or lan (IPMI 1.5, no cipher suite)
      privilege: ADMINISTRATOR    # -L: CALLBACK, USER, OPERATOR, ADMINISTRATOR
      timeout: 10                 # seconds per ipmitool call
      retries: 1                  # extra attempts of a failed call (not auth failures)
      ipmitool: ipmitool          # the binary (a name on PATH or a path)

**Password.** Never on a command line: each ipmitool process gets it as
``IPMI_PASSWORD`` in its own environment (``-E``); the daemon's
``os.environ`` is never touched. ``password_file`` is read at every call
(its first line), so a rotated password needs no restart; a file anyone can
read is warned about (log and ``validate()``). Error messages mask it.
(``IPMI_PASSWORD`` is visible in ``/proc/PID/environ`` of the ipmitool
process to its own user and root only, for the ~30 ms the call lasts.)

**Deadlines.** Every call has a timeout (``timeout``, cut to what is left of
the operation's own deadline); ipmitool's ``-N``/``-R`` make it give up by
itself before that, and a call that still runs at its timeout is killed
(SIGKILL to its process group) and reaped. Failures other than refused
credentials are retried ``retries`` times while the deadline allows.

**Operations** (the :class:`~pvc_core.drivers.fence.FenceDriver` contract):

- ``power_off(timeout)``: ``chassis power off``, then ``chassis power
  status`` every 0.2 s until it reads off: the node is *proved* off when
  this returns. ``DriverTimeout`` when it does not read off in time,
  ``DriverError`` (``IpmiAuthError``) when the BMC refuses.
- ``power_status(timeout)``: parses ``Chassis Power is on|off``; any other
  answer is ``unknown``.
- ``power_on(timeout)``: ``chassis power on``.
- ``validate()``: one ``chassis power status`` within 5 s, no retry;
  ``ok=False`` with the reason (ipmitool missing, unreadable password file,
  wrong password: ``RAKP 2 HMAC is invalid``, no answer: unreachable) so the
  node can warn loudly at startup that fencing it would fail.

Errors: ``DriverTimeout`` when the BMC does not answer (unreachable address
or port) or a call outlives its timeout; ``IpmiAuthError`` (a
``DriverError``) when the BMC refuses the password, user, privilege or
cipher suite; ``DriverError`` otherwise. Each message names the command and
the BMC and quotes ipmitool's first informative stderr line.
"""
