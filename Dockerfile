# Built by `make image` from the static binary in bin/ (CGO_ENABLED=0): the
# machine has no container registry, so the image starts from scratch.
FROM scratch
COPY bin/flotilla /flotilla
EXPOSE 4222 6222 7946 7946/udp 8222
ENV FLOTILLA_CLIENT_ADDR=0.0.0.0:4222 \
    FLOTILLA_HTTP_ADDR=0.0.0.0:8222 \
    FLOTILLA_DATA_DIR=/data
VOLUME /data
HEALTHCHECK --interval=5s --timeout=3s --retries=5 CMD ["/flotilla", "healthcheck", "--http-addr", "127.0.0.1:8222"]
ENTRYPOINT ["/flotilla"]
CMD ["server"]
