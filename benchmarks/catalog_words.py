"""Word lists the generated benchmark catalogs are made of (names, tags, descriptions)."""

from __future__ import annotations


def _words(text: str, separator: str | None = None) -> list[str]:
    return text.split(separator)


BUSINESS = _words(
    "payments checkout inventory search recommendation billing identity notification fraud "
    "ledger shipping catalog pricing analytics orders loyalty returns warehouse customer "
    "onboarding risk compliance reporting marketing support booking subscription invoice tax "
    "forecast telemetry observability air-quality anomaly rag embedding vector feature-store "
    "training inference scheduling geo media chat content partner settlement treasury audit "
    "consent "
)
FUNCTION = _words(
    "ledger gateway router engine indexer scorer detector monitor collector aggregator "
    "exporter importer sync resolver validator matcher planner optimizer publisher consumer "
    "scheduler tracker profile session cache store registry proxy classifier summarizer "
)
COMPONENT_SUFFIX = _words("service worker api ui job pipeline backend frontend")
COMPONENT_TYPES = _words(
    "service service service service service service website website library library ml-model "
    "pipeline "
)
LIFECYCLES = _words(
    "production production production production production production experimental "
    "experimental deprecated "
)
API_TYPES = _words("openapi openapi openapi openapi openapi openapi grpc grpc asyncapi graphql")
RESOURCE_TYPES = [
    (pair.split(":")[0], pair.split(":")[1])
    for pair in _words(
        "database:db database:postgres s3-bucket:bucket kafka-topic:topic redis:cache "
        "vector-db:vectors queue:queue gpu-pool:gpus"
    )
]
TAGS = _words(
    "python java go typescript rust kotlin grpc rest graphql kafka postgres redis ml llm gpu "
    "pci gdpr tier-1 tier-2 tier-3 batch streaming public internal fastapi spring react "
    "terraform "
)
FIRST = _words(
    "olivia liam emma noah amelia oliver sophia elijah ava james isabella lucas mia mateo "
    "charlotte ethan harper levi luna aiden camila kai aria leo nora ezra hazel wei yuki "
    "priya arjun fatima omar chloe hugo ines jonas lena marta pablo sven tomas zara amir "
    "breanna diego elena farah goran hana "
)
LAST = _words(
    "smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez "
    "lopez gonzalez wilson anderson thomas taylor moore jackson martin lee perez thompson "
    "white harris sanchez clark ramirez lewis robinson walker young allen king wright scott "
    "nguyen hill flores green adams nelson baker hall rivera campbell mitchell carter roberts "
    "davison kowalski novak schmidt muller rossi silva tanaka kim patel singh "
)
VERBS = _words(
    "Handles Computes Serves Stores Publishes Aggregates Validates Routes Scores Tracks "
    "Detects Indexes Streams Reconciles Forecasts "
)
OBJECTS = _words(
    "card payments|customer orders|stock levels|search results|product prices|fraud signals|"
    "shipping labels|invoices|user sessions|feature vectors|model predictions|sensor readings|"
    "air quality measurements|anomaly scores|chat transcripts|document embeddings|"
    "audit events|consent records|loyalty points|exchange rates|tax reports|support tickets|"
    "push notifications",
    "|",
)
QUALIFIERS = _words(
    "for the web shop|for mobile apps|in near real time|in nightly batches|for the EU region|"
    "for partners|with exactly-once delivery|behind the API gateway|for the data platform|"
    "for internal dashboards|with a 99.9% SLO",
    "|",
)
DEPARTMENTS = _words(
    "engineering data platform commerce finance-tech growth security ml-research "
    "customer-experience operations mobile infrastructure"
)
