module github.com/moatsec/moat/examples/travel/instances

go 1.26.0

require (
	github.com/jackc/pgx/v5 v5.13.0
	github.com/moatsec/moat v0.0.0-00010101000000-000000000000
	github.com/moatsec/moat/stores/postgres v0.0.0-00010101000000-000000000000
	github.com/moatsec/moat/stores/redis v0.0.0-00010101000000-000000000000
	github.com/redis/go-redis/v9 v9.23.0
	github.com/stretchr/testify v1.12.1
)

require (
	github.com/boombuler/barcode v1.0.1-0.20190219062509-6c824513bacc // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/fxamacker/cbor/v2 v2.10.0 // indirect
	github.com/go-jose/go-jose/v4 v4.1.9 // indirect
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	github.com/jackc/puddle/v2 v2.2.3 // indirect
	github.com/pquerna/otp v1.5.0 // indirect
	github.com/x448/float16 v0.8.4 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/crypto v0.59.0 // indirect
	golang.org/x/sync v0.25.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/text v0.44.0 // indirect
)

replace (
	github.com/moatsec/moat => ../../..
	github.com/moatsec/moat/stores/postgres => ../../../stores/postgres
	github.com/moatsec/moat/stores/redis => ../../../stores/redis
)
