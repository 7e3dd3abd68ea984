// eslint-disable-next-line @typescript-eslint/triple-slash-reference -- SST configs reference their declarations this way (.sst/platform/config.d.ts once sst is installed)
/// <reference path="./infra/sst-env.d.ts" />
/**
 * lisa-fn on AWS with SST v3: the run bucket, and `lisa serve` as an ECS service on GPU instances.
 *
 * SST's own Service component runs on Fargate, which has no GPUs, so the service is built from
 * Pulumi's aws.ecs resources: an EC2 capacity provider over an auto scaling group of ECS
 * GPU-optimized instances, tasks that reserve one GPU each, and an ALB that health-checks /ping.
 *
 * `sst` is not a dependency of this repository (its install is heavy and needs network); the
 * globals used here are declared in infra/sst-env.d.ts so `tsc` checks this file. With sst
 * installed, reference `./.sst/platform/config.d.ts` instead. Deploy: docs/deploy.md.
 */

const PORT = 8080;
const REGION = process.env.AWS_REGION ?? 'us-east-1';
/** ALB idle timeout = the per-request limit a chunk must fit in (LISA_PLATFORM_TIMEOUT_SECONDS). */
const REQUEST_TIMEOUT_SECONDS = 900;

export default $config({
  app(input) {
    return {
      name: 'lisa-fn',
      home: 'aws',
      removal: input?.stage === 'production' ? 'retain' : 'remove',
      providers: { aws: { region: REGION } },
    };
  },
  async run() {
    const instanceType = process.env.LISA_INSTANCE_TYPE ?? 'g5.xlarge';
    const gpuType = process.env.LISA_GPU_TYPE ?? 'A10G';
    const pricePerHour = process.env.LISA_PRICE_PER_HOUR_USD ?? '1.006';
    const maxInstances = Number(process.env.LISA_MAX_INSTANCES ?? '2');

    const bucket = new sst.aws.Bucket('Runs');
    // LISA_TOKENS holds salted hashes only (lisa token hash), never the tokens themselves
    const tokens = new sst.Secret('LisaTokens');
    const vpc = new sst.aws.Vpc('Vpc', { nat: 'ec2' });
    const repo = new aws.ecr.Repository('Image', { forceDelete: $app.stage !== 'production' });
    const image = $interpolate`${repo.repositoryUrl}:${process.env.LISA_IMAGE_TAG ?? 'latest'}`;
    const cluster = new aws.ecs.Cluster('Cluster', { settings: [{ name: 'containerInsights', value: 'enabled' }] });

    const assume = (service: string) =>
      JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: service }, Action: 'sts:AssumeRole' }] });

    // EC2 hosts: the ECS GPU AMI (NVIDIA driver + container toolkit), joined to the cluster
    const hostRole = new aws.iam.Role('HostRole', { assumeRolePolicy: assume('ec2.amazonaws.com') });
    new aws.iam.RolePolicyAttachment('HostEcs', {
      role: hostRole.name,
      policyArn: 'arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role',
    });
    new aws.iam.RolePolicyAttachment('HostSsm', { role: hostRole.name, policyArn: 'arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore' });
    const hostProfile = new aws.iam.InstanceProfile('HostProfile', { role: hostRole.name });
    const ami = aws.ssm.getParameterOutput({ name: '/aws/service/ecs/optimized-ami/amazon-linux-2/gpu/recommended/image_id' });
    const hostSg = new aws.ec2.SecurityGroup('HostSg', {
      vpcId: vpc.id,
      egress: [{ protocol: '-1', fromPort: 0, toPort: 0, cidrBlocks: ['0.0.0.0/0'] }],
    });
    const launchTemplate = new aws.ec2.LaunchTemplate('Hosts', {
      imageId: ami.value,
      instanceType,
      iamInstanceProfile: { arn: hostProfile.arn },
      vpcSecurityGroupIds: [hostSg.id],
      blockDeviceMappings: [{ deviceName: '/dev/xvda', ebs: { volumeSize: 100, volumeType: 'gp3' } }],
      userData: cluster.name.apply((name) =>
        Buffer.from(`#!/bin/bash\necho ECS_CLUSTER=${name} >> /etc/ecs/ecs.config\necho ECS_ENABLE_GPU_SUPPORT=true >> /etc/ecs/ecs.config\n`).toString('base64'),
      ),
    });
    const hosts = new aws.autoscaling.Group('Hosts', {
      vpcZoneIdentifiers: vpc.privateSubnets,
      minSize: 0,
      maxSize: maxInstances,
      launchTemplate: { id: launchTemplate.id, version: '$Latest' },
      // ECS managed scaling owns the desired capacity
      tags: [{ key: 'AmazonECSManaged', value: 'true', propagateAtLaunch: true }],
    });
    const capacity = new aws.ecs.CapacityProvider('Gpu', {
      autoScalingGroupProvider: {
        autoScalingGroupArn: hosts.arn,
        managedScaling: { status: 'ENABLED', targetCapacity: 100, minimumScalingStepSize: 1, maximumScalingStepSize: maxInstances },
        managedTerminationProtection: 'DISABLED',
      },
    });
    const providers = new aws.ecs.ClusterCapacityProviders('Providers', {
      clusterName: cluster.name,
      capacityProviders: [capacity.name],
      defaultCapacityProviderStrategies: [{ capacityProvider: capacity.name, weight: 1 }],
    });

    // the task: one GPU, the bucket, logs
    const executionRole = new aws.iam.Role('ExecutionRole', { assumeRolePolicy: assume('ecs-tasks.amazonaws.com') });
    new aws.iam.RolePolicyAttachment('Execution', {
      role: executionRole.name,
      policyArn: 'arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy',
    });
    const taskRole = new aws.iam.Role('TaskRole', { assumeRolePolicy: assume('ecs-tasks.amazonaws.com') });
    new aws.iam.RolePolicy('TaskBucket', {
      role: taskRole.id,
      policy: $jsonStringify({
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Action: ['s3:ListBucket'], Resource: [bucket.arn] },
          { Effect: 'Allow', Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'], Resource: [$interpolate`${bucket.arn}/*`] },
        ],
      }),
    });
    const logs = new aws.cloudwatch.LogGroup('Logs', { retentionInDays: 30 });
    const task = new aws.ecs.TaskDefinition('Serve', {
      family: $interpolate`${$app.name}-${$app.stage}-serve`,
      requiresCompatibilities: ['EC2'],
      networkMode: 'awsvpc',
      executionRoleArn: executionRole.arn,
      taskRoleArn: taskRole.arn,
      containerDefinitions: $jsonStringify([
        {
          name: 'lisa',
          image,
          essential: true,
          memoryReservation: 12_288,
          resourceRequirements: [{ type: 'GPU', value: '1' }],
          portMappings: [{ containerPort: PORT, protocol: 'tcp' }],
          // SIGTERM, then this long for running chunks to commit before SIGKILL
          stopTimeout: 120,
          environment: [
            { name: 'LISA_STORE', value: $interpolate`s3://${bucket.name}/lisa` },
            { name: 'LISA_TOKENS', value: tokens.value },
            { name: 'LISA_GPU_TYPE', value: gpuType },
            { name: 'LISA_PRICE_PER_HOUR_USD', value: pricePerHour },
            { name: 'LISA_PLATFORM_TIMEOUT_SECONDS', value: String(REQUEST_TIMEOUT_SECONDS) },
            { name: 'LISA_SHUTDOWN_GRACE_SECONDS', value: '110' },
            { name: 'LISA_REF_PREFIXES', value: $interpolate`s3://${bucket.name}/bases/,s3://${bucket.name}/data/{tenant}/,s3://${bucket.name}/exports/{tenant}/` },
            { name: 'PORT', value: String(PORT) },
          ],
          logConfiguration: {
            logDriver: 'awslogs',
            options: { 'awslogs-group': logs.name, 'awslogs-region': REGION, 'awslogs-stream-prefix': 'lisa' },
          },
        },
      ]),
    });

    // the ALB: health from /ping (204 while the engine starts is not yet healthy)
    const albSg = new aws.ec2.SecurityGroup('AlbSg', {
      vpcId: vpc.id,
      ingress: [{ protocol: 'tcp', fromPort: 80, toPort: 80, cidrBlocks: ['0.0.0.0/0'] }],
      egress: [{ protocol: '-1', fromPort: 0, toPort: 0, cidrBlocks: ['0.0.0.0/0'] }],
    });
    const taskSg = new aws.ec2.SecurityGroup('TaskSg', {
      vpcId: vpc.id,
      ingress: [{ protocol: 'tcp', fromPort: PORT, toPort: PORT, securityGroups: [albSg.id] }],
      egress: [{ protocol: '-1', fromPort: 0, toPort: 0, cidrBlocks: ['0.0.0.0/0'] }],
    });
    const alb = new aws.lb.LoadBalancer('Alb', {
      loadBalancerType: 'application',
      subnets: vpc.publicSubnets,
      securityGroups: [albSg.id],
      idleTimeout: REQUEST_TIMEOUT_SECONDS,
    });
    const target = new aws.lb.TargetGroup('Tasks', {
      port: PORT,
      protocol: 'HTTP',
      targetType: 'ip',
      vpcId: vpc.id,
      deregistrationDelay: 120,
      healthCheck: { path: '/ping', matcher: '200', interval: 15, healthyThreshold: 2, unhealthyThreshold: 3 },
    });
    const listener = new aws.lb.Listener('Http', {
      loadBalancerArn: alb.arn,
      port: 80,
      protocol: 'HTTP',
      defaultActions: [{ type: 'forward', targetGroupArn: target.arn }],
    });
    new aws.ecs.Service(
      'Serve',
      {
        cluster: cluster.arn,
        taskDefinition: task.arn,
        desiredCount: Number(process.env.LISA_TASKS ?? '1'),
        capacityProviderStrategies: [{ capacityProvider: capacity.name, weight: 1 }],
        networkConfiguration: { subnets: vpc.privateSubnets, securityGroups: [taskSg.id] },
        loadBalancers: [{ targetGroupArn: target.arn, containerName: 'lisa', containerPort: PORT }],
        healthCheckGracePeriodSeconds: 300,
      },
      { dependsOn: [listener, providers] },
    );

    return {
      url: $interpolate`http://${alb.dnsName}`,
      bucket: bucket.name,
      image: repo.repositoryUrl,
    };
  },
});
