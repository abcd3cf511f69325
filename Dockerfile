# A spendstream worker (and the CLI): the project pip-installed on Python 3.11.
# docker-compose.yml builds it for the two workers and the demo fleet.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY . .
RUN pip install . \
    && useradd --system --create-home spendstream \
    && mkdir -p /var/lib/spendstream \
    && chown spendstream /var/lib/spendstream

USER spendstream
WORKDIR /home/spendstream
ENV SPENDSTREAM_DATA_DIR=/var/lib/spendstream
EXPOSE 6066
CMD ["spendstream", "worker"]
