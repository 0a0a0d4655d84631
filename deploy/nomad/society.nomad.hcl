# Two federated societies, north and south, as one Nomad job: one group per
# society, each running `society supervise` with the `exec` driver on the
# one client that holds its folder (SCALING.md). Add a society by copying a
# group and changing its name, its host volume and its Variables path.
#
# Each client that runs a society declares the society's folder as a host
# volume in its agent configuration (a local disk, never NFS or SMB):
#
#   client {
#     host_volume "society-north" {
#       path      = "/var/lib/society/north"
#       read_only = false
#     }
#   }
#
# and the folder is made once, owned by the task's user, holding
# society.toml with `[society] name = "north"` and `[federation] nats_url`:
# the NATS servers' addresses, comma-separated, or their Consul DNS name
# (nats://nats.service.consul:4222) where Consul runs. Credentials never go
# there:
#
#   useradd --system --home-dir /var/lib/society --shell /usr/sbin/nologin society
#   install -m 0755 target/release/society /usr/local/bin/society
#   install -d -m 0700 -o society -g society /var/lib/society/north
#   runuser -u society -- society --root /var/lib/society/north init
#   edit /var/lib/society/north/society.toml
#
# The NATS credentials live in Nomad Variables, one path per society; the
# template below turns each item into an environment variable of the
# supervisor (SOCIETY_NATS_TOKEN, or SOCIETY_NATS_USER and
# SOCIETY_NATS_PASSWORD, and SOCIETY_NATS_CA for tls://). Put it before the
# job runs (the template waits for it), with any item for a NATS without
# auth:
#
#   nomad var put nomad/jobs/society/north \
#     SOCIETY_NATS_USER=north SOCIETY_NATS_PASSWORD=...
#
# Run:   nomad job run deploy/nomad/society.nomad.hcl
# Read:  nomad alloc logs -stderr -f -job society supervisor
#        (the supervisor's log; with two groups, pick an allocation id)

job "society" {
  type = "service"

  group "north" {
    # One supervisor per society, always: a second would find the folder's
    # lock held and exit 3 on this client, and no other client has the
    # folder. Never raise it.
    count = 1

    # The host volume pins the group to the one client that has this
    # folder, so Nomad cannot start a second copy elsewhere when it loses
    # touch with that client; the group waits for it instead.
    volume "root" {
      type      = "host"
      source    = "society-north"
      read_only = false
    }

    # As contrib/society.service: restart after a failure with a delay, and
    # never give up (mode "delay" waits out the interval, then tries again).
    # systemd's RestartPreventExitStatus=2 3 4 5 (usage, in use, no society,
    # invalid society.toml) cannot be said here: Nomad has no restart rule
    # by exit code, so a bad society.toml is retried every interval until
    # it is fixed. The task's events (`nomad alloc status`) show the code.
    restart {
      attempts = 5
      interval = "5m"
      delay    = "2s"
      mode     = "delay"
    }

    task "supervisor" {
      driver = "exec"
      # The owner of the folder; never root.
      user = "society"

      config {
        command = "/usr/local/bin/society"
        args    = ["--root", "/var/lib/society", "supervise"]
      }

      volume_mount {
        volume      = "root"
        destination = "/var/lib/society"
        read_only   = false
      }

      env {
        RUST_LOG = "info"
      }

      # The NATS credentials: every item of the Variable at
      # nomad/jobs/society/north (this job's group may read it) as an
      # environment variable. A change restarts the supervisor, which
      # resumes every message from its files.
      template {
        destination = "secrets/nats.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
        {{- with nomadVar "nomad/jobs/society/north" -}}
        {{- range .Tuples }}
        {{ .K }}={{ .V }}
        {{- end }}
        {{- end }}
        EOT
      }

      # SIGTERM to the supervisor (Nomad's default is SIGINT): it stops every
      # agent within its `grace` and exits 0. After kill_timeout the whole
      # task is SIGKILLed, like systemd's KillMode=mixed. 30s is the
      # client's default max_kill_timeout; keep it above the largest
      # `grace` in society.toml.
      kill_signal  = "SIGTERM"
      kill_timeout = "30s"

      # ~1,000 idle agents fit in about 1 GiB (BENCHMARKS.md, B4); give
      # room for what the agents' brains do.
      resources {
        cpu    = 1000
        memory = 2048
      }
    }
  }

  group "south" {
    count = 1

    volume "root" {
      type      = "host"
      source    = "society-south"
      read_only = false
    }

    restart {
      attempts = 5
      interval = "5m"
      delay    = "2s"
      mode     = "delay"
    }

    task "supervisor" {
      driver = "exec"
      user   = "society"

      config {
        command = "/usr/local/bin/society"
        args    = ["--root", "/var/lib/society", "supervise"]
      }

      volume_mount {
        volume      = "root"
        destination = "/var/lib/society"
        read_only   = false
      }

      env {
        RUST_LOG = "info"
      }

      template {
        destination = "secrets/nats.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
        {{- with nomadVar "nomad/jobs/society/south" -}}
        {{- range .Tuples }}
        {{ .K }}={{ .V }}
        {{- end }}
        {{- end }}
        EOT
      }

      kill_signal  = "SIGTERM"
      kill_timeout = "30s"

      resources {
        cpu    = 1000
        memory = 2048
      }
    }
  }
}
