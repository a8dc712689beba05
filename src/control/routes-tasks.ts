/**
 * Copy Services tasks over the control API (spec §4.2): saved operations of a
 * registered kind (FlashCopy establish / withdraw; PPRC pairs, paths, freeze / release: src/copy/tasks/pprc-kinds.ts)
 * and task groups, run by name. Handlers only translate; the TaskManager
 * validates and decides. `tasks` is read per request (a Copy Services reset
 * replaces the manager).
 *
 *   GET    /tasks                          every task and group, with its last execution; the operation kinds
 *   POST   /tasks                          create a task { name, kind, params } or a group { name, kind: 'group', members } (201)
 *   GET    /tasks/{name}                   one task
 *   PATCH  /tasks/{name}                   { params?, description? } (TASK_IN_GROUP while grouped)
 *   DELETE /tasks/{name}                   delete a task (TASK_IN_GROUP while grouped) or a group
 *   POST   /tasks/{name}/members           { task }: put a task into the group
 *   DELETE /tasks/{name}/members/{task}    take it out again
 *   POST   /tasks/{name}/execute           run it and wait for completion; a refused operation is
 *                                          a `failed` execution (200), an unknown task a 404
 *   GET    /tasks/{name}/progress          how far its copies are (rsQueryComplete)
 *   GET    /tasks/{name}/executions        its execution log
 */
import { Type } from '@fastify/type-provider-typebox';
import type { TaskManager } from '../copy/tasks/index.js';
import type { RouteModule } from './routes.js';
import { errorResponses } from './schemas.js';

const tags = ['tasks'];

const Execution = Type.Object(
  {
    id: Type.String(),
    task: Type.String(),
    kind: Type.String(),
    parent: Type.Union([Type.String(), Type.Null()], { description: 'the group execution this run was part of' }),
    status: Type.String({ enum: ['running', 'succeeded', 'failed', 'lost'], description: "'lost': a Copy Services reset came before it reported" }),
    startedAt: Type.String({ format: 'date-time' }),
    endedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    error: Type.Union([Type.Object({ code: Type.String(), message: Type.String() }), Type.Null()]),
    result: Type.Unknown(),
  },
  { title: 'TaskExecution' },
);

const Task = Type.Object(
  {
    name: Type.String(),
    kind: Type.String({ description: "an operation kind ('flashcopy.establish', 'flashcopy.withdraw', 'pprc.path', 'pprc.establish', 'pprc.suspend', 'pprc.terminate', 'pprc.freeze', 'pprc.release') or 'group'" }),
    params: Type.Optional(Type.Unknown()),
    members: Type.Optional(Type.Array(Type.String())),
    description: Type.String(),
    seq: Type.Integer(),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
    group: Type.Union([Type.String(), Type.Null()]),
    summary: Type.String(),
    lastExecution: Type.Union([Execution, Type.Null()]),
  },
  { title: 'Task' },
);

const CreateBody = Type.Object(
  {
    name: Type.String({ description: 'unique, at most 16 characters, no blanks' }),
    kind: Type.String(),
    params: Type.Optional(Type.Unknown()),
    members: Type.Optional(Type.Array(Type.String())),
    description: Type.Optional(Type.String()),
  },
  { additionalProperties: false, title: 'CreateTask' },
);

const UpdateBody = Type.Object({ params: Type.Optional(Type.Unknown()), description: Type.Optional(Type.String()) }, { additionalProperties: false, title: 'UpdateTask' });
const MemberBody = Type.Object({ task: Type.String() }, { additionalProperties: false, title: 'TaskGroupMember' });
const NameParams = Type.Object({ name: Type.String() });
const MemberParams = Type.Object({ name: Type.String(), task: Type.String() });

const Progress = Type.Object(
  {
    running: Type.Boolean({ description: 'some copy of the task is still in progress' }),
    percent: Type.Number(),
    items: Type.Array(Type.Object({ name: Type.String(), percent: Type.Number(), state: Type.String() })),
  },
  { title: 'TaskProgress' },
);

export function taskRoutes(tasks: () => TaskManager): RouteModule {
  return async (app) => {
    app.get(
      '/tasks',
      { schema: { operationId: 'listTasks', summary: 'List tasks and task groups', tags, response: { 200: Type.Object({ tasks: Type.Array(Task), kinds: Type.Array(Type.String()) }), ...errorResponses } } },
      async () => ({ tasks: tasks().list(), kinds: tasks().kinds.names() }),
    );

    app.post(
      '/tasks',
      { schema: { operationId: 'createTask', summary: 'Create a task or a task group', tags, body: CreateBody, response: { 201: Task, ...errorResponses } } },
      async (request, reply) => {
        const info = await tasks().create(request.body);
        return reply.status(201).header('location', `${app.prefix}/tasks/${encodeURIComponent(info.name)}`).send(info);
      },
    );

    app.get('/tasks/:name', { schema: { operationId: 'showTask', summary: 'One task', tags, params: NameParams, response: { 200: Task, ...errorResponses } } }, async (request) => tasks().show(request.params.name));

    app.patch(
      '/tasks/:name',
      { schema: { operationId: 'updateTask', summary: "Change a task's parameters or description", tags, params: NameParams, body: UpdateBody, response: { 200: Task, ...errorResponses } } },
      async (request) => tasks().update(request.params.name, request.body),
    );

    app.delete('/tasks/:name', { schema: { operationId: 'deleteTask', summary: 'Delete a task or a task group', tags, params: NameParams, response: { 204: Type.Null(), ...errorResponses } } }, async (request, reply) => {
      await tasks().delete(request.params.name);
      return reply.status(204).send(null);
    });

    app.post(
      '/tasks/:name/members',
      { schema: { operationId: 'groupTask', summary: 'Put a task into a task group', tags, params: NameParams, body: MemberBody, response: { 200: Task, ...errorResponses } } },
      async (request) => tasks().group(request.params.name, request.body.task),
    );

    app.delete(
      '/tasks/:name/members/:task',
      { schema: { operationId: 'ungroupTask', summary: 'Take a task out of its task group', tags, params: MemberParams, response: { 200: Task, ...errorResponses } } },
      async (request) => tasks().ungroup(request.params.name, request.params.task),
    );

    app.post(
      '/tasks/:name/execute',
      { schema: { operationId: 'executeTask', summary: 'Run a task (a group: its tasks in parallel) and wait for it to complete', tags, params: NameParams, response: { 200: Execution, ...errorResponses } } },
      async (request) => tasks().execute(request.params.name),
    );

    app.get(
      '/tasks/:name/progress',
      { schema: { operationId: 'taskProgress', summary: "How far the task's copies are", tags, params: NameParams, response: { 200: Progress, ...errorResponses } } },
      async (request) => tasks().progress(request.params.name),
    );

    app.get(
      '/tasks/:name/executions',
      { schema: { operationId: 'taskExecutions', summary: "The task's execution log, oldest first", tags, params: NameParams, response: { 200: Type.Object({ executions: Type.Array(Execution) }), ...errorResponses } } },
      async (request) => {
        tasks().show(request.params.name);
        return { executions: tasks().executions(request.params.name) };
      },
    );
  };
}
