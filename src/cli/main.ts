#!/usr/bin/env node
// The `lunrig` bin. Exits explicitly so idle keep-alive sockets cannot hold the process open.
import { runCli } from './program.js';

process.exit(await runCli(process.argv));
