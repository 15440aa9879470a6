# A thin front door: package.json scripts are the source of truth.
.PHONY: install build run test bench bench-deps soak clean

node_modules/.package-lock.json: package.json package-lock.json
	npm ci

install: node_modules/.package-lock.json

build: install
	npm run build

run: build
	node dist/cli.js serve

test: install
	npm test

bench: install
	npm run bench

soak: install
	npm run soak

bench-deps:
	apt-get update && apt-get install -y nginx netcat-openbsd wrk

clean:
	rm -rf dist .tap
