"""The MQTT broker, an outside system behind a small interface: its access rules and the
files that carry them (`rules`), the embedded broker of `billing run` (`embedded`, chosen by
`factory` between `mosquitto` and `amqtt`) and `billing broker` (`commands`)."""
